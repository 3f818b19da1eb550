"""Log readers: one module per format, found through the ``workbench.readers`` entry points."""

from workbench.io.registry import (
    ReaderEntrypoint as ReaderEntrypoint,
    RunData as RunData,
    get_reader as get_reader,
    guess_reader as guess_reader,
    readers as readers,
    register_reader as register_reader,
)
