"""Log readers: one module per format, found through the ``workbench.readers`` entry points."""

from workbench.io.registry import (
    ReaderEntrypoint as ReaderEntrypoint,
)
from workbench.io.registry import (
    RunData as RunData,
)
from workbench.io.registry import (
    get_reader as get_reader,
)
from workbench.io.registry import (
    guess_reader as guess_reader,
)
from workbench.io.registry import (
    readers as readers,
)
from workbench.io.registry import (
    register_reader as register_reader,
)
