"""relance-scheduler: Plans every invoice's reminders by the rules and fires each step at
its time, exactly once."""
