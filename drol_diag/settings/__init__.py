"""A run's settings (layer 1): the schedule, the published presets and profiles, the declaration of
every run option, and the resolution of options into the learner's and the run's configs."""

from drol_diag.settings.presets import PROFILES, family_preset, profile_settings
from drol_diag.settings.resolve import RunConfig, option_applies, resolve

__all__ = ["PROFILES", "RunConfig", "family_preset", "option_applies", "profile_settings", "resolve"]
