"""The three portals: /admin (platform), /reseller (reseller staff), /portal (account admins)."""
from app.extensions import login_manager


def register_portals(app):
    from portals.admin import bp as admin_bp
    from portals.customer import bp as customer_bp
    from portals.reseller import bp as reseller_bp

    from portals.access import may

    app.add_template_global(may)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(reseller_bp, url_prefix="/reseller")
    app.register_blueprint(customer_bp, url_prefix="/portal")
    from portals.webhooks import bp as webhooks_bp
    app.register_blueprint(webhooks_bp)
    # An anonymous visitor is sent to the login of the portal they tried to open.
    login_manager.blueprint_login_views = {
        "admin": "admin.login", "reseller": "reseller.login", "customer": "customer.login",
    }
    login_manager.login_view = "customer.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
