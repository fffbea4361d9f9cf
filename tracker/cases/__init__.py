"""Recovery cases (SPEC.md §11): a case per unsatisfied answer, worked by leads until the customer is won back."""
