"""Lead payloads for the two shipped example templates, shared by the flow tests."""

from __future__ import annotations

COD_PAYLOAD: dict[str, object] = {
    "customer_name": "Asha Verma",
    "store_name": "Kurta Co",
    "order_id": "A-1001",
    "amount": 899,
    "items": "2 cotton kurtas",
    "delivery_date": "2026-03-14",
}
APPOINTMENT_PAYLOAD: dict[str, object] = {
    "patient_name": "Ravi",
    "clinic_name": "Sunrise Clinic",
    "doctor_name": "Dr. Mehta",
    "appointment_at": "2026-03-03T10:30:00+05:30",
    "booking_ref": "BK-77",
}
