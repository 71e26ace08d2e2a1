"""The Cloud Storage JSON API subset that source uploads use (google-cloud-storage, gcloud builds submit)."""
