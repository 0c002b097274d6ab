"""dragonfarm components: the five layers of a farm (fence, trough, barn, breeding ground, ledger).

Each layer folder has `spec.py` (cloud-neutral inputs and pure validators) and one
`ComponentResource` per cloud. Import only the cloud module you use: provider SDKs are large.
"""
