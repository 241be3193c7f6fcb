"""One thin module per tab: each exposes build(demo) and calls models/ or costs/ for every action."""
