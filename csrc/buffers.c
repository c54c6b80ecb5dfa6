/* The float arrays a kernel method receives: every buffer taken and checked (C-contiguous,
 * float32 or float64, one type for all, the expected number of items) before any kernel
 * runs, and given back after; with a pooling's uint8 winners besides, for the kernels
 * that write or read them (shallow.c, winograd.c). Used by the kernels that parse their
 * own arguments.
 */
#include "kernels.h"

int
kernel_take(const KernelArg *args, Py_buffer *views, int count)
{
    int single = -1, k;
    for (k = 0; k < count; k++) {
        const KernelArg *arg = &args[k];
        views[k].buf = NULL;
        views[k].obj = NULL;
        if (arg->object == Py_None) {
            if (arg->kind == 'R' || arg->kind == 'W')
                continue;
            PyErr_SetString(PyExc_ValueError, "dendrite kernels: missing array");
            goto fail;
        }
        int written = arg->kind == 'w' || arg->kind == 'W';
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (written ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(arg->object, &views[k], flags) < 0) {
            views[k].obj = NULL;
            goto fail;
        }
        const char *format = views[k].format;
        if (format[0] == '<' || format[0] == '=' || format[0] == '@')
            format++;
        int this_single = views[k].itemsize == 4;
        /* The byte count divided, not the element count multiplied: a product past
         * PY_SSIZE_T_MAX would wrap and could match an empty array. */
        if (!((format[0] == 'f' || format[0] == 'd') && format[1] == '\0' &&
              views[k].len % views[k].itemsize == 0 &&
              views[k].len / views[k].itemsize == arg->elements &&
              (single < 0 || single == this_single))) {
            PyBuffer_Release(&views[k]);
            views[k].obj = NULL;
            PyErr_SetString(PyExc_ValueError,
                            "dendrite kernels need contiguous float32 or float64 arrays of "
                            "one dtype and of the expected sizes");
            goto fail;
        }
        single = this_single;
    }
    return single;
fail:
    while (k-- > 0)
        if (views[k].obj != NULL)
            PyBuffer_Release(&views[k]);
    return -1;
}

int
kernel_take_indices(PyObject *object, Py_ssize_t elements, char kind, int written, Py_buffer *view)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (written ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) < 0)
        return -1;
    const char *format = view->format;
    if (format[0] == '<' || format[0] == '=' || format[0] == '@' || format[0] == '|')
        format++;
    /* NumPy's int64 is 'l' on LP64 platforms and 'q' elsewhere. */
    int matches = kind == 'B' ? view->itemsize == 1 && format[0] == 'B'
                              : view->itemsize == 8 && (format[0] == 'l' || format[0] == 'q');
    if (!matches || format[1] != '\0' || view->len != elements * view->itemsize) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, kind == 'B'
                                              ? "dendrite kernels: expected a uint8 index array"
                                              : "dendrite kernels: expected a contiguous int64 "
                                                "index array of the expected size");
        return -1;
    }
    return 0;
}

int
kernel_take_with_indices(const KernelArg *args, Py_buffer *views, int count, PyObject *indices,
                         Py_ssize_t elements, char kind, int written, Py_buffer *index_view)
{
    if (kernel_take_indices(indices, elements, kind, written, index_view) < 0)
        return -1;
    int single = kernel_take(args, views, count);
    if (single < 0)
        PyBuffer_Release(index_view);
    return single;
}

void
kernel_give_back(Py_buffer *views, int count)
{
    for (int k = 0; k < count; k++)
        if (views[k].obj != NULL)
            PyBuffer_Release(&views[k]);
}
