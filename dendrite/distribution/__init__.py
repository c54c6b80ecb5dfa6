"""``keras.distribution`` for dendrite: data parallelism over MPI (see distribution_lib).

Run ``mpiexec -n 4 python train.py`` with::

    dendrite.distribution.set_distribution(dendrite.distribution.DataParallel())

before ``fit``. Needs ``pip install 'dendrite[mpi]'`` (mpi4py and the mpich wheel).
"""

from dendrite.distribution.distribution_lib import (
    DataParallel,
    Distribution,
    average_gradients,
    distribution,
    initialize,
    is_writer,
    launched_processes,
    list_devices,
    set_distribution,
)
from dendrite.distribution.threads import ThreadLimits, thread_limits

__all__ = [
    "DataParallel",
    "Distribution",
    "ThreadLimits",
    "average_gradients",
    "distribution",
    "initialize",
    "is_writer",
    "launched_processes",
    "list_devices",
    "set_distribution",
    "thread_limits",
]
