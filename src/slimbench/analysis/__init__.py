"""What a run's saved results mean: the results schema (`results`), the one judgement of change
(`judge`), the gate's rules (`gate_rules`) and checks (`gate`)."""
