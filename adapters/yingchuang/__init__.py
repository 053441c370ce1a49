"""盈创动力 Yingchuang Dongli: daily CSV batches the gateway pulls."""
