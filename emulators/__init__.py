"""Stand-ins for Salesforce and NICE CXone that follow apis.md (with fault injection), and the simulated
agents of the demo. They fake two SaaS APIs, so they import nothing from the product: only each other,
FastAPI and the standard library. The product (the demo, the bench, the tests) may import them.
"""
