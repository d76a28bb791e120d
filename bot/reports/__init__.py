"""The compliance report across incidents (``safeguard report``, ``/reports``): what is counted
lives in :mod:`.build`, the figures in :mod:`.model`, the four formats in :mod:`.render`."""
