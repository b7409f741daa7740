"""erp2crm: ERP orders, invoices and service tickets in; unified, enriched CRM customer profiles out."""
