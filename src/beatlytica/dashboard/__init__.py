"""The dashboard over the analytics marts: a Streamlit app and a static HTML export."""
