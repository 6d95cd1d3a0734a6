"""ACM, the caption refiner: model, ACD data pipeline, trainer and the `acm:` system (docs/design.md)."""
