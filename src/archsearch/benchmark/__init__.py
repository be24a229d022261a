"""Benchmarks of strategies on tabular evaluators: ``tabular`` runs strategies x seeds on the NAS-Bench-201
table (a simulated clock for budgets in seconds), ``hardware`` the same under hardware objectives and constraints
(latency tables, MnasNet rewards, Pareto fronts). A tool on top of strategies and evaluators, beside the study.
"""
