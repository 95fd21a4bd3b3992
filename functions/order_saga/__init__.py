"""Order saga: moves each order through its state machine as the other steps report back."""
