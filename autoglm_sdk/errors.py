"""One exception hierarchy for everything a user can get wrong.

The CLI prints an :class:`AutoGLMError` as ``error: <message>`` plus an optional
``hint: <hint>`` line and exits with code 2; anything else is an internal error
(exit 1). Messages name the manifest key, plugin or file that was wrong.
"""

from __future__ import annotations


class AutoGLMError(Exception):
    """A mistake the user can fix. ``hint`` says how, in one line."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class ManifestError(AutoGLMError):
    """The manifest's shape or a section's values are invalid."""


class PluginNotFoundError(AutoGLMError):
    """A manifest or command names a plugin that is not installed."""


class PluginLoadError(AutoGLMError):
    """A plugin is installed but its code fails to import or is malformed."""


class DuplicatePluginError(AutoGLMError):
    """Two distributions register the same plugin name for the same kind."""


class StageMismatchError(AutoGLMError):
    """Two connected pipeline stages do not fit (sizes, modalities, edge types)."""


class InputError(AutoGLMError):
    """Data passed to a stage (or to ``autoglm run``) is malformed."""


class BackendUnavailableError(AutoGLMError):
    """A hardware backend was requested and cannot be used on this machine."""


class ArtifactError(AutoGLMError):
    """An artifact directory is missing, incomplete or from an incompatible build."""


class DataError(AutoGLMError):
    """A data source cannot produce its data (bad file, bad split, empty split)."""


class StageFailed(AutoGLMError):
    """A plugin raised an unexpected error while running; the message names the stage and its distribution."""


class AutoGLMWarning(UserWarning):
    """Something the user should know that does not stop the command (a plugin hook that failed, a version
    drift); the CLI prints it as one ``warning:`` line."""
