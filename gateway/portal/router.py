"""The portal's routes, in one router for the app: the login, the consent page
(/oauth/authorize) and the portal's pages (consents, access history, my report,
disputes, credit repair)."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.portal import authorize, disputes, history, login, pages, repair_pages, selfreport

router = APIRouter()
router.include_router(login.router)
router.include_router(authorize.router)
router.include_router(pages.router)
router.include_router(history.router)
router.include_router(selfreport.router)
router.include_router(disputes.router)
router.include_router(repair_pages.router)
