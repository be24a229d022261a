"""Built-in search spaces, registered by name. Each module is a small space definition citing its paper."""
from .registry import SPACES, SpaceEntry, get_space, register_reference, register_space, space_names  # noqa: F401
from . import macro, mbconv, nb201, superkernel  # noqa: E402,F401  (register built-ins)
try:  # the cell space is written in its own module
    from . import cell  # noqa: F401
except ImportError:  # pragma: no cover
    pass
from . import hierarchical  # noqa: E402,F401  (issue 11: Liu et al. ICLR 2018)
from . import rnn  # noqa: E402,F401  (issue 11: DARTS / ENAS recurrent cells, text)
from . import references  # noqa: E402,F401  (each built-in space's hand-designed reference)
