"""Flask-WTF forms; field names are part of the interface contract (DESIGN.md)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, Length, NumberRange, Regexp

from app.models import Phase
from app.services.accounts import USERNAME_RE, USERNAME_RULE


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember_me = BooleanField("Remember me")
    submit = SubmitField("Sign in")


class RegistrationForm(FlaskForm):
    username = StringField(
        "Username",
        filters=[_strip],
        validators=[
            DataRequired("Choose a username."),
            Regexp(USERNAME_RE, message="A username has " + USERNAME_RULE),
        ],
    )
    email = StringField("E-mail", validators=[DataRequired(), Email(check_deliverability=False), Length(max=120)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=128)])
    password2 = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password", "Passwords differ.")])
    sciper = StringField("SCIPER", validators=[DataRequired(), Regexp(r"^\d{6}$", message="A SCIPER is 6 digits.")])
    team_select = SelectField("Team", validate_choice=False)
    new_team_name = StringField("New team name", validators=[Length(max=64)])
    join_code = StringField("Team join code", validators=[Length(max=64)])
    submit = SubmitField("Register")


class UploadForm(FlaskForm):
    file = FileField("Zip file", validators=[FileRequired("Choose a .zip file to upload.")])
    submit = SubmitField("Upload")


class ReferenceForm(FlaskForm):
    file = FileField("Zip file of undefended traffic", validators=[FileRequired("Choose a .zip file to upload.")])
    submit = SubmitField("Set as reference")


class PhaseForm(FlaskForm):
    phase = SelectField("Phase", choices=[SelectChoice(p.value) for p in Phase])
    submit = SubmitField("Set phase")


class RegistrationToggleForm(FlaskForm):
    registration_open = SelectField("Registration", choices=[SelectChoice("1", "Open"), SelectChoice("0", "Closed")])
    submit = SubmitField("Save")


class GenerateMatchesForm(FlaskForm):
    round = IntegerField("Round", validators=[DataRequired(), NumberRange(min=1)])
    submit = SubmitField("Generate matches")


class ConfirmForm(FlaskForm):
    """An empty form: just the CSRF token, for buttons that change state."""

    submit = SubmitField("Confirm")


class RerunFailedForm(FlaskForm):
    """Staff: re-run every submission that failed at or after a UTC date."""

    since = StringField("Failed since (UTC)", validators=[DataRequired(), Length(max=32)])
    submit = SubmitField("Re-run failed submissions")


class RescoreForm(FlaskForm):
    """Staff: recompute a round's attack scores."""

    round = SelectField("Round", coerce=int, validate_choice=True)
    submit = SubmitField("Rescore")


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        "E-mail",
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=120)],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
    )
    submit = SubmitField("Send me a reset link")


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=128)])
    password2 = PasswordField("Repeat it", validators=[DataRequired(), EqualTo("password", "Passwords differ.")])
    submit = SubmitField("Set my password")


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
