"""`saga demo` (`./taskw demo`): a guided tour of the running system. Two customers place
seven orders that end in every way an order can (completed in both payment modes;
cancelled for no stock, no money, no payment in time, by the customer, and for a failed
shipment, refunded); the tour prints each timeline, the wallets and the notifications, and
exits non-zero naming any order that did not end as expected. Modules: stack (start or
find the system), scenarios (the seven orders), drive (follow one), timeouts (the
payment-window shortcut), report (printing), run (the whole tour)."""
