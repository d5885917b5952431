/** A modal `<dialog>`: opened on mount, Escape calls `onCancel` (the caller unmounts it). */
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

export function Modal({
  labelledBy,
  extraClass,
  onCancel,
  children,
}: {
  labelledBy: string;
  extraClass?: string;
  onCancel: () => void;
  children: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog !== null && !dialog.open) dialog.showModal();
  }, []);
  return (
    <dialog
      ref={ref}
      class={extraClass === undefined ? "confirm" : `confirm ${extraClass}`}
      aria-labelledby={labelledBy}
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      {children}
    </dialog>
  );
}
