"""Custom surveys from TRACKER_SURVEYS_FILE: per brand, source and locale text, extra questions and branding."""

from tracker.surveys.custom.load import LOGO_MAX_BYTES, LOGO_TYPES, load_surveys_file
from tracker.surveys.custom.model import (
    MAX_EXTRA_QUESTIONS,
    CustomSurvey,
    ExtraQuestion,
    Followup,
    Logo,
    SurveyEntry,
    SurveysFile,
    SurveyText,
)

__all__ = [
    "LOGO_MAX_BYTES",
    "LOGO_TYPES",
    "MAX_EXTRA_QUESTIONS",
    "CustomSurvey",
    "ExtraQuestion",
    "Followup",
    "Logo",
    "SurveyEntry",
    "SurveyText",
    "SurveysFile",
    "load_surveys_file",
]
