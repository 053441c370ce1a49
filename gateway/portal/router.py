"""The portal's routes, in one router for the app: the login, the consent page
(/oauth/authorize) and the portal's pages."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.portal import authorize, login, pages

router = APIRouter()
router.include_router(login.router)
router.include_router(authorize.router)
router.include_router(pages.router)
