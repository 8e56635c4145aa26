"""One blueprint per audience: auth, portal (NGOs), queues (staff), cases, public, api."""
