"""Forms of the staff timeline and announcements pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from app.models import Phase

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


class ScheduledActionForm(FlaskForm):
    action = SelectField(
        "Action",
        choices=[
            SelectChoice("phase", "Set the phase"),
            SelectChoice("registration", "Open or close registration"),
            SelectChoice("round", "Generate the next round"),
        ],
    )
    phase = SelectField(
        "Phase (for a phase change)", choices=[SelectChoice(p.value) for p in Phase], default=Phase.ATTACK.value
    )
    registration = SelectField(
        "Registration (for registration)",
        choices=[SelectChoice("closed", "Closed"), SelectChoice("open", "Open")],
        default="closed",
    )
    due_at = DateTimeLocalField(
        "When (UTC)", format=DATETIME_FORMATS, validators=[DataRequired("Give a date and time in UTC.")]
    )
    submit = SubmitField("Save")

    def value(self) -> str:
        return {"phase": self.phase.data, "registration": self.registration.data}.get(self.action.data, "")


class AnnouncementForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=120)])
    body = TextAreaField("Text", validators=[DataRequired(), Length(max=5000)])
    expires_at = DateTimeLocalField(
        "Shown until (UTC)", format=DATETIME_FORMATS, validators=[DataRequired("Give the expiry in UTC.")]
    )
    submit = SubmitField("Publish and e-mail the students")


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    action = StringField("Action", validators=[Optional(), Length(max=64)])
