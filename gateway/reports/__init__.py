"""Credit reports: building, scoring, signing and serving them."""
