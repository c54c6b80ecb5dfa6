/* The float arrays a kernel method receives: every buffer taken and checked (C-contiguous,
 * float32 or float64, one type for all, the expected number of items) before any kernel
 * runs, and given back after. Used by the kernels that parse their own arguments
 * (depthwise.c, recurrent.c).
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
        if (!((format[0] == 'f' || format[0] == 'd') && format[1] == '\0' &&
              views[k].len == arg->elements * views[k].itemsize &&
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

void
kernel_give_back(Py_buffer *views, int count)
{
    for (int k = 0; k < count; k++)
        if (views[k].obj != NULL)
            PyBuffer_Release(&views[k]);
}
