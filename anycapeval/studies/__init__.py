"""Studies of metrics and judges: correlation with human ratings, judge checks."""
