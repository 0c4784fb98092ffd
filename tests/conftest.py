import pytest
import torch

import seesaw_losses


@pytest.fixture(autouse=True)
def _value_checks_and_seed():
    """Tests run with the value checks on (label range, binary masks), and deterministic seeds."""
    torch.manual_seed(0)
    with seesaw_losses.value_checks(True):
        yield
