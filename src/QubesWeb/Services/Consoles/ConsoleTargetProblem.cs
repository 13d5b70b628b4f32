namespace QubesWeb.Services.Consoles;

/// <summary>Why a console socket names a qube that has no console to relay; <see cref="None"/> when it has one.</summary>
public enum ConsoleTargetProblem
{
    None,
    InvalidName,
    NoSuchQube,

    /// <summary>dom0: the console runs in it; it has no console of a domain.</summary>
    AdminVm,
}
