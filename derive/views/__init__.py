"""How records are shown: printing, notation, pictures, templates, PDF."""
