"""The teaching models: small diffusion models trained by this project on CPU and shipped in the package.

Introduced in notebook 01_diffusion_basics. See ``helpers/teaching/README.md`` for the model cards.
"""
