"""The property suite (tests/properties.py) on every registered loss, function and module forms."""

import pytest

import seesaw_losses as sl
from properties import check_entry


@pytest.mark.parametrize("entry", sl.available_losses(), ids=lambda entry: entry.name)
def test_registered_loss_properties(entry):
    check_entry(entry)
