"""Exceptions and warnings raised by optcore.

Bad input raises the built-in ``ValueError`` or ``TypeError`` with a message that names the
argument; a solver that does not converge returns normally (``success=False``) and warns
:class:`ConvergenceWarning`.
"""

__all__ = ["OptcoreWarning", "ConvergenceWarning", "NumericalError"]


class OptcoreWarning(UserWarning):
    """Base class of every warning optcore emits."""


class ConvergenceWarning(OptcoreWarning):
    """A solver stopped before meeting its tolerance (iteration limit, numerical breakdown).

    The result is still returned; its ``status`` and ``message`` say why.
    """


class NumericalError(ArithmeticError):
    """A NaN or overflow the method cannot recover from.

    Raised instead of returning a result that contains NaN.
    """
