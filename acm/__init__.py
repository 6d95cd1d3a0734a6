"""ACM, the caption refiner: model, ACD data pipeline, trainer and the `acm:` system (DESIGN §7)."""
