"""The official matrices, the regression baseline and the static site builder."""
