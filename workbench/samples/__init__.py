"""Deterministic sample campaign: simulated pick-and-place runs as MCAP and ROS 1 bags.

>>> from workbench.samples import GRID
>>> len(GRID)
4
"""

from workbench.samples.campaign import (
    GENERATOR_VERSION as GENERATOR_VERSION,
)
from workbench.samples.campaign import (
    GRID as GRID,
)
from workbench.samples.campaign import (
    PROFILES as PROFILES,
)
from workbench.samples.campaign import (
    checkpoint_id as checkpoint_id,
)
from workbench.samples.campaign import (
    generate as generate,
)
from workbench.samples.simulation import EFFECTS as EFFECTS
from workbench.samples.writers import TOPICS as TOPICS
