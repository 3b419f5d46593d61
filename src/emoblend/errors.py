"""Exceptions for mistakes a user can fix.

Every error raised for bad input derives from :class:`EmoblendError`, and its message is one
line that says what was wrong and how to fix it. The CLI prints that line and exits with
status 2; anything else is a bug and keeps its traceback.
"""


class EmoblendError(Exception):
    """A user's mistake or a missing resource, with a message that says how to fix it."""


class FaceModelError(EmoblendError):
    """The MediaPipe face-model file is missing, corrupt, or could not be downloaded."""


class ImageError(EmoblendError):
    """An image could not be read or has a layout we cannot convert."""


class DatasetError(EmoblendError):
    """A FER2013 CSV or a feature table does not have the expected layout."""


class VideoError(EmoblendError):
    """A video or camera could not be opened or read."""


class ClassifierError(EmoblendError):
    """A classifier file is missing or does not match the features it is given."""


class OutputError(EmoblendError):
    """An output file or folder cannot be written: full disk, read-only folder, not a folder."""


class BatchError(EmoblendError):
    """A batch run's inputs or output folder cannot be used as given."""
