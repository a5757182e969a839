"""Pure competition logic: no Flask, no app imports."""
