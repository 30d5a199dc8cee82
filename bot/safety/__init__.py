"""Safety: screening every piece of client text for crisis language as it arrives."""
