"""The HTTP ingress function: orders, accounts, products, auth, notifications, OpenAPI and
Swagger UI, and the customer's cabinet page. main.py is the functions-framework entry point;
app.py assembles the routes the resource modules declare."""
