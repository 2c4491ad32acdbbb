"""After the run: following requests through the checker's decision (track) and deciding them (approve)."""
