"""Admission: the ordered gates that decide whether, and when, a queued lead may be dialed."""
