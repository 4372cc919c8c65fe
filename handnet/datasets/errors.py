"""The error every dataset loader raises for missing, corrupt or unexpected data."""

from handnet.errors import HandnetError


class DatasetError(HandnetError, ValueError):
    """A data file or source is missing, corrupt, or not the data it claims to be.

    It is a ValueError too, so code that already catches bad values keeps working.
    """
