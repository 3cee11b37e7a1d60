"""A small simulated web shop whose pages render to accessibility trees.

Pages: ``home`` (featured products, who is signed in), ``search`` (results of a query), ``product``
(price, stock, a quantity combobox, add to cart), ``cart`` (one row and a Remove button per product,
the total, checkout), ``account`` (name and email fields, save) and ``order`` (the confirmation).
Every page starts with the same header (title, Home / Cart (n) / Account links, a search box).

Actions change the application state: ``click [id]``, ``type [id] [text]`` (Enter submits; ``type
[id] [text] [0]`` only fills the field), ``select [id] [option]`` and ``go_back``. Actions the page
does not support change nothing. Element IDs are fixed by what an element is (the header always
1-6, the result link of product p always 22+p, ...), like DOM nodes a site reuses, so the changes
an action makes are learnable from the trees.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from rlvr_world.text.webpage import Item

HOST = "http://shop.test"
COLORS = ("Blue", "Red", "Green", "Black", "White", "Yellow", "Gray", "Pink")
NOUNS = ("Mug", "Lamp", "Kettle", "Scarf", "Teapot", "Notebook", "Backpack", "Candle", "Vase", "Clock")
NUM_PRODUCTS = 12
NUM_FEATURED = 3
MAX_QUANTITY = 3
PAGE_TYPES = ("home", "search", "product", "cart", "account", "order")

# Element IDs: the header, then a fixed block per page type (per-product elements offset by the product).
ROOT, HOME_LINK, CART_LINK, ACCOUNT_LINK, SEARCH_BOX, SEARCH_BUTTON = 1, 2, 3, 4, 5, 6
HOME_HEADING, FEATURED_LINK, SIGNED_IN = 10, 11, 14
RESULTS_HEADING, RESULTS_COUNT, RESULT_LINK = 20, 21, 22
PRODUCT_HEADING, PRICE, STOCK, QUANTITY, ADD_BUTTON, PRODUCT_MESSAGE = 40, 41, 42, 43, 44, 45
CART_HEADING, CART_ROW, TOTAL, CHECKOUT = 50, 51, 80, 81  # row of product p: 51+2p, its Remove button 52+2p
ACCOUNT_HEADING, NAME_LABEL, NAME_BOX, EMAIL_LABEL, EMAIL_BOX, SAVE_BUTTON, ACCOUNT_MESSAGE = 90, 91, 92, 93, 94, 95, 96
ORDER_HEADING, ORDER_SUMMARY, CONTINUE_LINK = 100, 101, 102


@dataclass(frozen=True)
class Product:
    name: str
    price_cents: int
    stock: int


def money(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


def make_catalog(seed: int) -> list[Product]:
    """The shop's products, fixed by the seed: distinct color + noun names sharing nouns and colors."""
    rng = random.Random(f"webpage-catalog/{seed}")
    nouns = rng.sample(NOUNS, NUM_PRODUCTS // 2)
    names = [f"{color} {noun}" for noun in nouns for color in rng.sample(COLORS, 2)]
    return [Product(name, rng.randrange(5, 60) * 100 + rng.choice((0, 50, 99)), rng.randrange(0, 6)) for name in names]


@dataclass
class ShopState:
    """Everything a page shows: where the user is, the history, the cart, the forms."""

    page: str = "home"
    product: int | None = None  # the product page's product
    query: str = ""  # the search page's query
    history: list[tuple[str, int | None, str]] = field(default_factory=list)
    stock: list[int] = field(default_factory=list)
    cart: dict[int, int] = field(default_factory=dict)  # product -> quantity
    search_text: str = ""
    quantity: int = 1
    message: str | None = None
    name: str = "Ann"
    email: str = "ann@mail.test"
    draft_name: str = "Ann"
    draft_email: str = "ann@mail.test"
    orders: int = 0


class Shop:
    """The application: state, rendering and the effect of actions."""

    def __init__(self, catalog: list[Product], state: ShopState | None = None):
        self.catalog = catalog
        self.state = state or ShopState()
        if not self.state.stock:
            self.state.stock = [p.stock for p in catalog]

    # ------------------------------------------------------------------ rendering

    @property
    def url(self) -> str:
        s = self.state
        if s.page == "home":
            return f"{HOST}/"
        if s.page == "search":
            return f"{HOST}/search?q={s.query.lower()}"
        if s.page == "product":
            return f"{HOST}/product/{s.product}"
        if s.page == "order":
            return f"{HOST}/order/{1000 + s.orders}"
        return f"{HOST}/{s.page}"

    def title(self) -> str:
        s = self.state
        page = {"home": "Home", "search": f"Search: {s.query}", "cart": "Cart", "account": "Account",
                "order": "Order placed"}.get(s.page)
        return f"{page or self.catalog[s.product].name} | Shop"

    def results(self, query: str) -> list[int]:
        words = query.lower().split()
        return [i for i, p in enumerate(self.catalog) if words and all(w in p.name.lower().split() for w in words)]

    def tree(self) -> list[Item]:
        s = self.state
        items = [
            Item(ROOT, "RootWebArea", self.title(), (("focused", "True"),)),
            Item(HOME_LINK, "link", "Home", depth=1),
            Item(CART_LINK, "link", f"Cart ({sum(s.cart.values())})", depth=1),
            Item(ACCOUNT_LINK, "link", "Account", depth=1),
            Item(SEARCH_BOX, "searchbox", s.search_text, (("required", "False"),), depth=1),
            Item(SEARCH_BUTTON, "button", "Search", depth=1),
        ]
        return items + [Item(i, role, name, attrs, 1) for i, role, name, attrs in getattr(self, f"_{s.page}")()]

    def _home(self):
        yield HOME_HEADING, "heading", "Featured products", ()
        for k in range(NUM_FEATURED):
            yield FEATURED_LINK + k, "link", self.catalog[k].name, ()
        yield SIGNED_IN, "StaticText", f"Signed in as {self.state.name}", ()

    def _search(self):
        found = self.results(self.state.query)
        yield RESULTS_HEADING, "heading", f"Results for {self.state.query}", ()
        yield RESULTS_COUNT, "StaticText", f"{len(found)} result{'s' * (len(found) > 1)}" if found else "No results", ()
        for p in found:
            yield RESULT_LINK + p, "link", self.catalog[p].name, ()

    def _product(self):
        s = self.state
        product, stock = self.catalog[s.product], s.stock[s.product]
        yield PRODUCT_HEADING, "heading", product.name, ()
        yield PRICE, "StaticText", money(product.price_cents), ()
        yield STOCK, "StaticText", f"In stock: {stock}" if stock else "Out of stock", ()
        yield QUANTITY, "combobox", f"Quantity: {s.quantity}", (("hasPopup", "listbox"),)
        yield ADD_BUTTON, "button", "Add to cart", ()
        if s.message:
            yield PRODUCT_MESSAGE, "StaticText", s.message, ()

    def _cart(self):
        s = self.state
        yield CART_HEADING, "heading", "Shopping cart", ()
        for p in sorted(s.cart):
            product = self.catalog[p]
            yield CART_ROW + 2 * p, "StaticText", f"{product.name} x{s.cart[p]} {money(product.price_cents * s.cart[p])}", ()
            yield CART_ROW + 2 * p + 1, "button", "Remove", ()
        if s.cart:
            yield TOTAL, "StaticText", f"Total: {money(self.total())}", ()
            yield CHECKOUT, "button", "Checkout", ()
        else:
            yield TOTAL, "StaticText", "Your cart is empty", ()

    def _account(self):
        s = self.state
        yield ACCOUNT_HEADING, "heading", "Your account", ()
        yield NAME_LABEL, "StaticText", "Name", ()
        yield NAME_BOX, "textbox", s.draft_name, (("required", "True"),)
        yield EMAIL_LABEL, "StaticText", "Email", ()
        yield EMAIL_BOX, "textbox", s.draft_email, (("required", "True"),)
        yield SAVE_BUTTON, "button", "Save", ()
        if s.message:
            yield ACCOUNT_MESSAGE, "StaticText", s.message, ()

    def _order(self):
        yield ORDER_HEADING, "heading", "Thank you for your order", ()
        yield ORDER_SUMMARY, "StaticText", f"Order #{1000 + self.state.orders} is confirmed", ()
        yield CONTINUE_LINK, "link", "Continue shopping", ()

    def total(self) -> int:
        return sum(self.catalog[p].price_cents * q for p, q in self.state.cart.items())

    # ------------------------------------------------------------------ actions

    def navigate(self, page: str, product: int | None = None, query: str = "", remember: bool = True) -> None:
        s = self.state
        if remember:
            s.history.append((s.page, s.product, s.query))
        s.page, s.product, s.query = page, product, query
        s.search_text = query if page == "search" else ""
        s.quantity, s.message = 1, None
        s.draft_name, s.draft_email = s.name, s.email

    def act(self, action: str) -> None:
        """Apply one action string; an action the page does not support changes nothing."""
        action = action.strip()
        if action == "go_back":
            if self.state.history:
                self.navigate(*self.state.history.pop(), remember=False)
            return
        match = re.fullmatch(r"(click|type|select) \[(\d+)\](?: \[(.*?)\])?(?: \[([01])\])?", action)
        if match is None:
            return
        verb, target, text, enter = match.group(1), int(match.group(2)), match.group(3), match.group(4) != "0"
        present = {item.id for item in self.tree()}
        if target not in present:
            return
        if verb == "click" and text is None:
            self._click(target)
        elif verb == "type" and text is not None:
            self._type(target, text, enter)
        elif verb == "select" and text is not None and target == QUANTITY and text.isdigit():
            if 1 <= int(text) <= MAX_QUANTITY:
                self.state.quantity = int(text)

    def _click(self, target: int) -> None:
        s = self.state
        if target == HOME_LINK:
            self.navigate("home")
        elif target == CART_LINK:
            self.navigate("cart")
        elif target == ACCOUNT_LINK:
            self.navigate("account")
        elif target == SEARCH_BUTTON and s.search_text.strip():
            self.navigate("search", query=s.search_text.strip())
        elif s.page == "home" and FEATURED_LINK <= target < FEATURED_LINK + NUM_FEATURED:
            self.navigate("product", product=target - FEATURED_LINK)
        elif s.page == "search" and target >= RESULT_LINK:
            self.navigate("product", product=target - RESULT_LINK)
        elif s.page == "product" and target == ADD_BUTTON:
            self._add_to_cart()
        elif s.page == "cart" and CART_ROW <= target < TOTAL and (target - CART_ROW) % 2 == 1:
            p = (target - CART_ROW) // 2
            s.stock[p] += s.cart.pop(p)
        elif s.page == "cart" and target == CHECKOUT:
            s.cart.clear()
            s.orders += 1
            self.navigate("order")
        elif s.page == "account" and target == SAVE_BUTTON:
            self._save_account()
        elif s.page == "order" and target == CONTINUE_LINK:
            self.navigate("home")

    def _add_to_cart(self) -> None:
        s = self.state
        p, q = s.product, s.quantity
        if s.stock[p] >= q:
            s.stock[p] -= q
            s.cart[p] = s.cart.get(p, 0) + q
            s.message = f"Added {q} to cart"
        else:
            s.message = f"Only {s.stock[p]} left" if s.stock[p] else "Sold out"

    def _type(self, target: int, text: str, enter: bool) -> None:
        s = self.state
        if target == SEARCH_BOX:
            s.search_text = text
            if enter and text.strip():
                self.navigate("search", query=text.strip())
        elif s.page == "account" and target in (NAME_BOX, EMAIL_BOX):
            if target == NAME_BOX:
                s.draft_name = text
            else:
                s.draft_email = text
            if enter:
                self._save_account()

    def _save_account(self) -> None:
        s = self.state
        if "@" in s.draft_email and s.draft_name.strip():
            s.name, s.email = s.draft_name, s.draft_email
            s.message = "Saved"
        else:
            s.message = "Please check your details"

    # ------------------------------------------------------------------ what an agent can do here

    def actions(self) -> list[str]:
        """Every action worth trying on the current page (for the noisy agent)."""
        s = self.state
        out = [f"click [{item.id}]" for item in self.tree()]
        out.append("go_back")
        if s.page == "product":
            out += [f"select [{QUANTITY}] [{q}]" for q in range(1, MAX_QUANTITY + 1)]
        return out
