DATA_ENGINEERING = "team:data-engineering"
ANALYTICS = "team:analytics"
DATA_SCIENCE = "team:data-science"
