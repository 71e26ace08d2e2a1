"""The Cloud Billing Catalog API (google.cloud.billing.v1.CloudCatalog): the services and SKUs a price is read from."""
