"""Spaceport's shared package: event contracts, job state, AWS adapters, and the small
helpers every stage job shares (errors, progress, SageMaker paths, splat files).

Nothing imported at package level pulls in torch or pycolmap: Lambda code imports this.
"""

__version__ = "0.1.0"
