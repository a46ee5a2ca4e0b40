"""One router per concern: health, predict, admin."""
