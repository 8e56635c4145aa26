"""WTForms classes, one module per area. Domain validation lives in the services; forms only
shape input and carry CSRF, so a rule is written once for the pages and the API."""
